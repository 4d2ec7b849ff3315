// Generates the typed API client from the backend's OpenAPI document (web/openapi.json).
// `make api-client` refreshes openapi.json from the backend, then runs this.
import { resolve } from 'node:path'
import { defineConfig } from '@hey-api/openapi-ts'

export default defineConfig({
  // An absolute path, so the output does not depend on how the document was named.
  input: resolve(process.env.SELFMART_OPENAPI ?? 'openapi.json'),
  output: {
    path: process.env.SELFMART_API_OUT ?? 'src/api/generated',
  },
  plugins: [
    { name: '@hey-api/client-fetch', throwOnError: true },
    '@hey-api/typescript',
    { name: '@hey-api/sdk' },
  ],
})
