// @ts-check
import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.tools/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Each vendor SDK is imported in exactly one file: its store adapter.
    files: ['packages/**/*.ts', 'apps/**/*.ts'],
    ignores: ['packages/stores/src/s3/s3.store.ts', 'packages/stores/src/gdrive/gdrive.store.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@aws-sdk/*', '@smithy/*', 'googleapis', 'google-auth-library', 'gaxios'],
              message:
                'Vendor SDKs are imported only by their store adapter (packages/stores/src/s3, gdrive).',
            },
          ],
        },
      ],
    },
  },
);
