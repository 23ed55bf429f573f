// ESLint: typescript-eslint's strict rules on the service, its tests, scripts and benchmarks.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'test/generated/', 'data/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      // Under noUncheckedIndexedAccess, `list[i]!` after a bounds check is the plain way to say it; what
      // must not come back is `viewer!` (fields that need a user say so with t.withAuth).
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
      // The service refuses control characters in names and paths on purpose: its patterns name them.
      'no-control-regex': 'off',
      'no-restricted-syntax': [
        'error',
        { selector: "TSNonNullExpression > Identifier[name='viewer']", message: 'Use t.withAuth({ user: true }) so that the context types the viewer as present.' },
        { selector: "TSNonNullExpression > MemberExpression[property.name='viewer']", message: 'Use t.withAuth({ user: true }) so that the context types the viewer as present.' },
      ],
    },
  },
  {
    // Tests reach into results they have just checked.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // The benchmark clients read untyped JSON from GraphQL answers and subscriptions.
    files: ['bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-useless-assignment': 'off' },
  },
  {
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', NodeJS: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', structuredClone: 'readonly', Response: 'readonly', Request: 'readonly', Headers: 'readonly', URLSearchParams: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', setImmediate: 'readonly', CustomEvent: 'readonly', Event: 'readonly', EventTarget: 'readonly', crypto: 'readonly', Blob: 'readonly', File: 'readonly', FormData: 'readonly', ReadableStream: 'readonly' } },
  },
);
