import { postgresAvailable } from '@signal/testkit';
import { postgresTarget } from './db-targets';
import { describeVisitorConsent } from './visitor-consent.suite';

const available = await postgresAvailable();
describeVisitorConsent(postgresTarget('idhub_visitors', 4), !available);
