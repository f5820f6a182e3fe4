/**
 * One voice for validation errors: the schema validator's first error becomes `{ field, message }`,
 * the field named as a client writes it (`dropoff.lat`, `items[0].qty`, `merchantId`) and the
 * message saying what was expected (the allowed values, the bounds, the fields a place takes).
 * Values the client sent are echoed only when they are numbers or one of a list's words: a phone
 * or an address never comes back in an error.
 */

/** What Ajv reports with `verbose: true` (the failing schema and its parent come along). */
export interface SchemaError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly message?: string;
  readonly data?: unknown;
  readonly parentSchema?: Readonly<Record<string, unknown>>;
}

export interface ValidationProblem {
  /** Where, as a client writes it; absent when the whole body is at fault. */
  readonly field?: string;
  readonly message: string;
}

/** `/items/0/qty` -> `items[0].qty`; JSON pointer escapes undone. */
export function fieldName(instancePath: string, child?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  return parts.reduce((name, part) => (/^\d+$/.test(part) ? `${name}[${part}]` : name ? `${name}.${part}` : part), '');
}

export function describeSchemaError(error: SchemaError, context: string): ValidationProblem {
  const { keyword, params, parentSchema: parent = {} } = error;
  const child = keyword === 'required' ? params.missingProperty : keyword === 'additionalProperties' ? params.additionalProperty : undefined;
  const field = fieldName(error.instancePath, typeof child === 'string' ? child : undefined);
  const subject = field || (context === 'body' ? 'the body' : `the ${context}`);
  const at = (message: string): ValidationProblem => (field ? { field, message: `${subject} ${message}` } : { message: `${subject} ${message}` });
  switch (keyword) {
    case 'required':
      return at('is required');
    case 'additionalProperties': {
      const allowed = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {});
      const where = error.instancePath ? fieldName(error.instancePath) : context === 'body' ? 'the body' : `the ${context}`;
      return at(`is not a known field: ${where} takes ${allowed.length ? allowed.join(', ') : 'no fields'}`);
    }
    case 'type':
      return at(`must be ${article(String(params.type))}, got ${describeValue(error.data)}`);
    case 'minimum':
    case 'maximum':
      return at(`must be ${range(parent, 'minimum', 'maximum', '')}, got ${describeValue(error.data)}`);
    case 'minLength':
    case 'maxLength':
      return at(`must be ${range(parent, 'minLength', 'maxLength', ' characters long')}, got ${lengthOf(error.data)}`);
    case 'minItems':
    case 'maxItems':
      return at(`must have ${range(parent, 'minItems', 'maxItems', ' entries')}, got ${Array.isArray(error.data) ? error.data.length : '?'}`);
    case 'pattern':
      return at(`must be ${typeof parent.description === 'string' ? parent.description : `text matching ${String(params.pattern)}`}`);
    case 'enum': {
      const allowed = (params.allowedValues as unknown[] | undefined) ?? [];
      return at(`must be one of ${allowed.map(String).join(', ')}, got ${describeValue(error.data, allowed)}`);
    }
    default:
      return at(error.message ?? 'is not valid');
  }
}

function article(type: string): string {
  const name = type === 'object' ? 'JSON object' : type;
  return /^[aeiou]/i.test(name) ? `an ${name}` : `a ${name}`;
}

/** `between 1 and 500 characters long`, `at least 0`, `at most 999`: both bounds when the schema has both. */
function range(schema: Readonly<Record<string, unknown>>, lowKey: string, highKey: string, unit: string): string {
  const low = schema[lowKey];
  const high = schema[highKey];
  if (low !== undefined && high !== undefined) return `between ${String(low)} and ${String(high)}${unit}`;
  if (low !== undefined) return `at least ${String(low)}${unit}`;
  return `at most ${String(high)}${unit}`;
}

function lengthOf(data: unknown): string {
  return typeof data === 'string' ? `${data.length}` : '?';
}

/** Numbers, booleans, null and a list's own words are shown; anything else only by its kind. */
function describeValue(data: unknown, words: readonly unknown[] = []): string {
  if (data === null) return 'null';
  if (Array.isArray(data)) return 'an array';
  if (typeof data === 'number' || typeof data === 'boolean') return String(data);
  if (typeof data === 'string') {
    const short = data.length <= 40 && /^[\w.-]*$/.test(data);
    return words.length > 0 && short ? JSON.stringify(data) : 'a string';
  }
  return typeof data === 'object' ? 'an object' : typeof data;
}
