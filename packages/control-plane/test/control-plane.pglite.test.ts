import { describeControlPlaneSuite } from './control-plane.suite';
import { pgliteTarget } from './db-targets';

describeControlPlaneSuite(pgliteTarget());
