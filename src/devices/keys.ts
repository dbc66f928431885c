import { BIP32Factory } from 'bip32';
import { mnemonicToSeedSync, validateMnemonic } from 'bip39';
import * as ecc from 'tiny-secp256k1';
import { DeviceError, DeviceErrorCode } from './errors.js';

const bip32 = BIP32Factory(ecc);

/** BIP32 path of device `index` under an operator's mnemonic (PROTOCOL.md, "Provisioning"). */
export const devicePath = (index: number): string => `m/7720'/0'/${index}'`;

/** The secret key (hex) of device `index`, derived from the operator's BIP39 mnemonic. */
export function deriveDeviceKey(mnemonic: string, index: number, passphrase = ''): string {
  if (!validateMnemonic(mnemonic.trim()))
    throw new DeviceError(DeviceErrorCode.INVALID_PARAMS, 'not a valid BIP39 mnemonic');
  if (!Number.isInteger(index) || index < 0 || index >= 2 ** 31)
    throw new DeviceError(
      DeviceErrorCode.INVALID_PARAMS,
      'the device index must be an integer from 0 to 2^31-1',
    );
  const node = bip32.fromSeed(mnemonicToSeedSync(mnemonic.trim(), passphrase)).derivePath(devicePath(index));
  return Buffer.from(node.privateKey!).toString('hex');
}
