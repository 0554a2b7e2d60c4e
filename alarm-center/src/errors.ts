// Errors of the alarm centre, each with a stable code and the HTTP status it maps to.
export class AlarmError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export const unauthorized = (why: string) => new AlarmError('DOSIS_ERR_UNAUTHORIZED', 401, why);
export const forbidden = (why: string) => new AlarmError('DOSIS_ERR_FORBIDDEN', 403, why);
export const notFound = (what: string) => new AlarmError('DOSIS_ERR_NOT_FOUND', 404, `${what} not found`);
export const conflict = (why: string) => new AlarmError('DOSIS_ERR_CONFLICT', 409, why);
export const badRequest = (why: string) => new AlarmError('DOSIS_ERR_BAD_REQUEST', 400, why);
