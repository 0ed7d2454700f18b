import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // test/fixtures: source trees tests only read (e.g. imports that break the import rules on purpose).
  { ignores: ['dist/', 'node_modules/', 'test-results/', 'coverage/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A worker pool is where a forgotten await hides.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
  {
    // The dashboard's browser modules: `npm run typecheck` checks every name they use against the DOM's types
    // (src/admin-ui/tsconfig.json), which knows the browser's globals better than a list here would.
    files: ['src/admin-ui/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
);
