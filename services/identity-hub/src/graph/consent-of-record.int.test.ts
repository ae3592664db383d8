import { postgresAvailable } from '@signal/testkit';
import { describeConsentOfRecord } from './consent-of-record.suite';
import { postgresTarget } from './db-targets';

const available = await postgresAvailable();
describeConsentOfRecord(postgresTarget('idhub_consent', 8), !available);
