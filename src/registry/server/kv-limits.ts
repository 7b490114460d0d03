/** Consul's wording for an oversized KV value (the API checks it while reading, the registry before writing). */
export const kvTooLarge = (size: number, max: number): string =>
  `Request body(${size} bytes) too large, max size: ${max} bytes. See https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.`;
