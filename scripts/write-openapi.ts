import { writeFileSync } from 'node:fs';
import { renderOpenApiYaml } from './openapi-document.js';

writeFileSync(new URL('../openapi.yaml', import.meta.url), await renderOpenApiYaml());
console.log('openapi.yaml written');
