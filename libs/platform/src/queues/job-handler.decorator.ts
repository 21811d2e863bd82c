import { SetMetadata } from '@nestjs/common';
import type { JobName } from './job-registry';

export const JOB_HANDLER_KEY = 'closebook:job-handler';

/** Marks a provider method as the one handler of a registered job name. */
export const JobHandler = (name: JobName) => SetMetadata(JOB_HANDLER_KEY, name);
