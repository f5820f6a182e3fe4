export { ERROR_CODES, type ErrorCode } from './codes.ts';
export { ApiError } from './api-error.ts';
export { DbUnavailableError } from './db-unavailable-error.ts';
export { coerceError } from './coerce-error.ts';
export { isConnectionError } from './is-connection-error.ts';
export { ProviderUnavailableError } from './provider-unavailable-error.ts';
export { ProviderRejectedError } from './provider-rejected-error.ts';
export { InvalidJobPayloadError } from './invalid-job-payload-error.ts';
export { LockTimeoutError } from './lock-timeout-error.ts';
