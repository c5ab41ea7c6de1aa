// What a client author writes to generate the client (docs/clients.md).
import { defineConfig } from "@hey-api/openapi-ts";

export default defineConfig({
  input: process.env.HULIAN_SPEC ?? "../../openapi/openapi.json",
  output: process.env.HULIAN_CLIENT_OUT ?? "generated",
  plugins: ["@hey-api/client-fetch"],
});
