import { postgresAvailable } from '@signal/testkit';
import { postgresTarget } from './db-targets';
import { describeOrgIsolation } from './org-isolation.suite';

const available = await postgresAvailable();
describeOrgIsolation(postgresTarget('idhub_orgs', 4), !available);
