import { HttpError, sendJson } from '@signal/http';
import type { RouteHandlers } from '../http/route-kit';
import type { ReencryptionJobs } from './reencrypt-job';

export function createReencryptRoutes(deps: {
  readonly jobs: Pick<ReencryptionJobs, 'start' | 'status'>;
}): Pick<RouteHandlers, 'crypto.reencryptStart' | 'crypto.reencryptStatus'> {
  return {
    /** Starts the background job: 202 with its status, 409 while one runs (in any process). */
    async 'crypto.reencryptStart'({ res, info, principal }) {
      const outcome = await deps.jobs.start({
        userId: principal.userId,
        email: principal.email,
        orgId: principal.orgId,
        ip: info.ip,
        userAgent: info.userAgent,
      });
      if (outcome.kind === 'already_running') {
        throw new HttpError(
          'conflict',
          'a re-encryption job is already running: poll GET /v1/admin/crypto/re-encrypt',
        );
      }
      sendJson(res, 202, outcome.status);
    },

    /** `{"status","total_records","processed_records","failed_records","started_at","completed_at"}`. */
    async 'crypto.reencryptStatus'({ res }) {
      const status = await deps.jobs.status();
      if (status === null) throw new HttpError('not_found', 'no re-encryption job has run yet');
      sendJson(res, 200, status);
    },
  };
}
