import { ApiError } from './api-error.ts';

/** MySQL could not be reached, or did not answer within the bound. Nothing was committed by us. */
export class DbUnavailableError extends ApiError {
  constructor(cause?: unknown) {
    super('DB_UNAVAILABLE', undefined, {}, { cause });
  }
}
