// Errors of the screens: stable codes the HTTP layer maps to status codes and the pages to plain words.

export class ScreenError extends Error {
  readonly code: string;
  readonly statusCode: number;
  constructor(code: string, statusCode: number, message: string) {
    super(message);
    this.name = 'ScreenError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

/** A PIN or staff id that does not meet the format (setting a PIN, never verifying one). */
export class PinFormatError extends ScreenError {
  constructor(message: string) {
    super('DOSIS_ERR_PIN_FORMAT', 400, message);
  }
}

export class NotLoggedInError extends ScreenError {
  constructor() {
    super('DOSIS_ERR_NOT_LOGGED_IN', 401, 'log in with staff id and PIN first');
  }
}

export class ManifestTooLargeError extends ScreenError {
  constructor(maxBytes: number) {
    super('DOSIS_ERR_MANIFEST_TOO_LARGE', 413, `a manifest may be at most ${maxBytes} bytes`);
  }
}

/** Loading a manifest that is not the one the staff validated and confirmed in this session. */
export class NotConfirmedError extends ScreenError {
  constructor() {
    super('DOSIS_ERR_NOT_CONFIRMED', 409, 'validate the manifest and confirm it before loading');
  }
}

export class ReceiptNotFoundError extends ScreenError {
  constructor() {
    super('DOSIS_ERR_RECEIPT_NOT_FOUND', 404, 'no such receipt');
  }
}
