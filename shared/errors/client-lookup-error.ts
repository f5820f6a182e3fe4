/**
 * An operator named an API client (by name or key prefix) that is not there, or that several
 * clients answer to. `code` is what the CLI prints first, for scripts.
 */
export class ClientLookupError extends Error {
  override readonly name = 'ClientLookupError';
  readonly code: 'CLIENT_NOT_FOUND' | 'CLIENT_AMBIGUOUS';

  constructor(code: 'CLIENT_NOT_FOUND' | 'CLIENT_AMBIGUOUS', message: string) {
    super(message);
    this.code = code;
  }
}
