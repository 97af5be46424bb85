import type { ResultCodes } from "./state.js";

/** Horizon's error body (RFC 7807 `application/problem+json`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  extras?: Record<string, unknown>;
}

const TYPE = "https://stellar.org/horizon-errors/";

export const notFound = (): Problem => ({
  type: `${TYPE}not_found`,
  title: "Resource Missing",
  status: 404,
  detail:
    "The resource at the url requested was not found.  This usually occurs for one of two reasons:  The url requested is not valid, or no data in our database could be found with the parameters provided.",
});

export const badRequest = (invalidField: string, reason: string): Problem => ({
  type: `${TYPE}bad_request`,
  title: "Bad Request",
  status: 400,
  detail: "The request you sent was invalid in some way.",
  extras: { invalid_field: invalidField, reason },
});

export const transactionMalformed = (envelopeXdr: string): Problem => ({
  type: `${TYPE}transaction_malformed`,
  title: "Transaction Malformed",
  status: 400,
  detail:
    "Horizon could not decode the transaction envelope in this request. A transaction should be an XDR TransactionEnvelope struct encoded using base64.  The envelope read from this request is echoed in the `extras.envelope_xdr` field of this response for your convenience.",
  extras: { envelope_xdr: envelopeXdr },
});

export const transactionFailed = (envelopeXdr: string, resultXdr: string, resultCodes: ResultCodes): Problem => ({
  type: `${TYPE}transaction_failed`,
  title: "Transaction Failed",
  status: 400,
  detail:
    "The transaction failed when submitted to the stellar network. The `extras.result_codes` field on this response contains further details.  Descriptions of each code can be found at: https://developers.stellar.org/api/errors/http-status-codes/horizon-specific/transaction-failed/",
  extras: { envelope_xdr: envelopeXdr, result_codes: resultCodes, result_xdr: resultXdr },
});

/** The one error the in-process API throws for a refused or failed transaction; `problem` is Horizon's body. */
export class LocalHorizonError extends Error {
  override name = "LocalHorizonError";
  constructor(readonly problem: Problem) {
    const codes = problem.extras?.result_codes as ResultCodes | undefined;
    super(codes ? `${problem.title}: ${[codes.transaction, codes.inner_transaction, ...(codes.operations ?? [])].filter(Boolean).join(", ")}` : problem.title);
  }
}

export const serverError = (): Problem => ({
  type: `${TYPE}server_error`,
  title: "Internal Server Error",
  status: 500,
  detail: "An error occurred while processing this request.",
});
