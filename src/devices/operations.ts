import { availableOf, balanceOf } from '../ledger/types.js';
import type { Ledger } from '../ledger/ledger.js';
import { msat } from '../domain/msat.js';
import type { PaymentsService } from '../payments/service.js';
import { deviceMethod, type DeviceOperation } from './bridge.js';
import { DeviceError, DeviceErrorCode } from './errors.js';

const invalid = (message: string): DeviceError => new DeviceError(DeviceErrorCode.INVALID_PARAMS, message);

function str(params: Record<string, unknown>, key: string, max = 8000): string {
  const v = params[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw invalid(`${key} must be a non-empty string`);
  return v;
}

function amount(params: Record<string, unknown>, key: string): ReturnType<typeof msat> {
  const v = params[key];
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,18}$/.test(v))
    throw invalid(`${key} must be a positive msat amount as a decimal string`);
  return msat(v);
}

/** The account operations a device may call: its balance, paying and creating invoices. */
export function accountOperations(deps: {
  ledger: Ledger;
  payments: PaymentsService;
}): Record<string, DeviceOperation> {
  return {
    balance: deviceMethod(
      () => undefined,
      async (device) => {
        const a = await deps.ledger.requireAccount(device.accountId);
        return { balanceMsat: balanceOf(a).toString(), availableMsat: availableOf(a).toString() };
      },
    ),
    pay: deviceMethod(
      (params) => ({
        request: str(params, 'invoice'),
        ...(params['maxFeeMsat'] !== undefined ? { maxFeeMsat: amount(params, 'maxFeeMsat') } : {}),
      }),
      async (device, input, req) => {
        const p = await deps.payments.pay(device.accountId, {
          ...input,
          ...(req.k !== undefined ? { idempotencyKey: `device:${req.k}` } : {}),
        });
        return {
          paymentId: p.id,
          status: p.status,
          amountMsat: p.amountMsat,
          ...(p.feeMsat !== undefined ? { feeMsat: p.feeMsat } : {}),
          ...(p.preimage !== undefined ? { preimage: p.preimage } : {}),
          ...(p.failureReason !== undefined ? { failureReason: p.failureReason } : {}),
        };
      },
    ),
    invoice: deviceMethod(
      (params) => {
        const expiry = params['expirySeconds'];
        if (expiry !== undefined && (typeof expiry !== 'number' || !Number.isInteger(expiry) || expiry < 60))
          throw invalid('expirySeconds must be an integer >= 60');
        return {
          amountMsat: amount(params, 'amountMsat'),
          ...(params['description'] !== undefined ? { description: str(params, 'description', 639) } : {}),
          ...(typeof expiry === 'number' ? { expirySeconds: expiry } : {}),
        };
      },
      async (device, input, req) => {
        const inv = await deps.payments.createInvoice(device.accountId, {
          ...input,
          ...(req.k !== undefined ? { idempotencyKey: `device:${req.k}` } : {}),
        });
        return {
          paymentHash: inv.paymentHash,
          request: inv.request,
          amountMsat: inv.amountMsat,
          expiresAt: inv.expiresAt,
        };
      },
    ),
  };
}
