// ESLint 9 flat config: the recommended JavaScript rules and typescript-eslint's recommended
// type-aware rules over src/, test/ and vite.config.ts (types from tsconfig.json through the
// TypeScript 6 API, see README.md). Layout is Prettier's job (`npm run format`).
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  globalIgnores(["dist/", ".test-build/"]),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A statement that Prettier wraps onto its own line gets braces.
      curly: ["error", "multi-line"],
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test runs the tests it registers; their promises need no handling.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
    },
  },
  { files: ["**/*.js"], extends: [tseslint.configs.disableTypeChecked] },
);
