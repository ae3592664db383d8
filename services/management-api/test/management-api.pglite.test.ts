import { afterAll, beforeAll } from 'vitest';
import { describeApiSuite } from './api.suite';
import { pgliteTarget } from './db-targets';
import { describeOperationsSuite } from './operations.suite';
import { describeRbacSuite } from './rbac.suite';
import { describeReencryptSuite } from './reencrypt.suite';
import { describeSecuritySuite } from './security.suite';

// One PGlite instance for the whole file (it takes seconds to start); every test gets its own schema. The
// file-level hooks hold the instance open across the suites (setup/teardown are reference-counted).
const target = pgliteTarget();
beforeAll(() => target.setup());
afterAll(() => target.teardown());

describeRbacSuite(target);
describeApiSuite(target);
describeOperationsSuite(target);
describeReencryptSuite(target);
describeSecuritySuite(target);
