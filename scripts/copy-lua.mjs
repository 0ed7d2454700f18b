// tsc does not copy non-TS files; the Redis store loads its Lua scripts from beside its compiled code.
import { cpSync } from 'node:fs';
cpSync(new URL('../src/store/lua', import.meta.url), new URL('../dist/store/lua', import.meta.url), {
  recursive: true,
});
