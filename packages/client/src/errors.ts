/** Codes of the failures the client reports itself, next to the API's own codes (`invalid_amount`, `resource_not_found`…). */
export type ClientErrorCode = "network_error" | "timeout" | "unexpected_response";

/**
 * Every failed call: an error response of the API (with its `status`, `code`, `param` and the
 * `requestId` to quote to the operator), or a request that got no usable response (`status`
 * undefined; `code` network_error or timeout), after any retries.
 */
export class LumenpayError extends Error {
  override readonly name = "LumenpayError";
  /** The API's error code, or a `ClientErrorCode`. */
  readonly code: string;
  /** The HTTP status; undefined when no response arrived. */
  readonly status: number | undefined;
  /** The request field the error is about, when the API names one (`amount`, `cursor`, `Idempotency-Key`…). */
  readonly param: string | undefined;
  /** The server's `Request-Id` header, for its logs. */
  readonly requestId: string | undefined;

  constructor(init: { code: string; message: string; status?: number; param?: string; requestId?: string; cause?: unknown }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.param = init.param;
    this.requestId = init.requestId;
  }
}
