import { pgliteTarget } from './db-targets';
import { describeVisitorConsent } from './visitor-consent.suite';

describeVisitorConsent(pgliteTarget());
