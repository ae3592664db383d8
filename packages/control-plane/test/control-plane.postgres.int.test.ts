import { postgresAvailable } from '@signal/testkit';
import { describeControlPlaneSuite } from './control-plane.suite';
import { postgresTarget } from './db-targets';

describeControlPlaneSuite(postgresTarget(), !(await postgresAvailable()));
