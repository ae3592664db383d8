import { uspOptOut } from './gpp';
import { err, ok, type Result } from './result';
import type { UsSectionView } from './state';

export type UsPrivacyFlag = 'Y' | 'N' | '-';

/** An IAB CCPA US Privacy string (`1YNN`): version, notice given, opted out of sale, LSPA covered. */
export interface UsPrivacy {
  readonly version: 1;
  readonly notice: UsPrivacyFlag;
  readonly optOutSale: UsPrivacyFlag;
  readonly lspaCovered: UsPrivacyFlag;
  /** False only when the visitor opted out of sale (`optOutSale` = Y); `-` means CCPA does not apply. */
  readonly saleAllowed: boolean;
}

export interface UsPrivacyError {
  readonly code: 'us_privacy_invalid';
  readonly message: string;
}

function flag(char: string): UsPrivacyFlag | undefined {
  if (char === 'Y' || char === 'N' || char === '-') return char;
  return undefined;
}

/**
 * Parse a US Privacy string. Exactly four characters: `1`, then Y / N / - three times (letters are accepted in
 * either case, as some CMPs lowercase them). Anything else is an error value, never an exception.
 */
export function parseUsPrivacy(value: string): Result<UsPrivacy, UsPrivacyError> {
  const upper = value.toUpperCase();
  const notice = flag(upper.charAt(1));
  const optOutSale = flag(upper.charAt(2));
  const lspaCovered = flag(upper.charAt(3));
  if (upper.length !== 4 || upper.charAt(0) !== '1' || !notice || !optOutSale || !lspaCovered) {
    return err({ code: 'us_privacy_invalid', message: 'expected 1 followed by three of Y, N or -' });
  }
  return ok({ version: 1, notice, optOutSale, lspaCovered, saleAllowed: optOutSale !== 'Y' });
}

/** The same opt-out view a GPP `uspv1` section gives. */
export function usPrivacyView(usPrivacy: UsPrivacy): UsSectionView {
  return {
    section: 'usprivacy',
    sale: uspOptOut(usPrivacy.optOutSale),
    sharing: 'not_applicable',
    targetedAdvertising: 'not_applicable',
    gpc: false,
  };
}
