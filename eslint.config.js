import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", ".lumenpay/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Plain JavaScript here runs on Node (the bin, build scripts).
  { files: ["**/*.js"], languageOptions: { globals: globals.node } },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
