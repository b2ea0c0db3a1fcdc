// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * npm run lint. The recommended rules, plus the type-aware ones that catch the
 * bugs this code base can have: a promise nobody awaits or catches (a lost
 * publish, an unhandled rejection that kills the process), a promise where a
 * callback's result is ignored (an async Express handler or event listener),
 * throwing or rejecting with something that is not an Error. And the team's
 * rule: the environment is read in one place, shared/runtime/config.ts.
 */
export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', fetch: 'readonly' },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `any` is how tests read JSON bodies and how drivers hand rows over; tsc's strict mode does the rest.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read settings through shared/runtime/config.ts (loadConfig, or inheritedEnv for a child process).' },
      ],
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
    },
  },
  {
    files: ['shared/runtime/config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Command-line tools print for a person; chai's expect(...).to.be.true reads as an expression.
    files: ['**/*-cli.ts', 'bench/**', 'scripts/**', 'test/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
