// The API's types and calls are generated from the committed spec at every
// build: a spec change that breaks the app breaks `npm run build`.
import { defineConfig } from "@hey-api/openapi-ts";

export default defineConfig({
  input: "../openapi/openapi.json",
  output: "src/gen",
  plugins: ["@hey-api/client-fetch"],
});
