/** A producer tried to put a job on a queue whose payload does not match the job's schema. */
export class InvalidJobPayloadError extends TypeError {
  override readonly name = 'InvalidJobPayloadError';
}
