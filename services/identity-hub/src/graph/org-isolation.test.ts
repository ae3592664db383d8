import { pgliteTarget } from './db-targets';
import { describeOrgIsolation } from './org-isolation.suite';

/** PGlite in process: one instance per database (a second one holds the pre-0003 graph of the upgrade test). */
describeOrgIsolation(pgliteTarget());
