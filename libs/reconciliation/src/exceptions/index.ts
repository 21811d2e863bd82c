export { ReconciliationExceptionsModule, ReconciliationExceptionsWorkerModule, EXCEPTION_ENTITIES } from './exceptions.module';
export * from './model';
export { ExceptionQueue } from './entities/exception-queue.entity';
export { ReconciliationException } from './entities/exception.entity';
export type { PastResolution } from './entities/exception.entity';
export { ExceptionComment } from './entities/exception-comment.entity';
export { ExceptionQueuesService } from './exception-queues.service';
export type { QueueInput, QueueUpdate, RoutedQueue } from './exception-queues.service';
export { ExceptionsService } from './exceptions.service';
export type {
  RecordInput,
  RecordResult,
  RecordManyItem,
  RecordManyOptions,
  RecordManyResult,
  AutoResolveInput,
  BlockingExceptions,
  BlockingQueue,
  ResolveInput,
  ExceptionDetail,
  ExceptionListQuery,
  ExceptionRefs,
} from './exceptions.service';
export { LateUsageExceptions, LATE_USAGE_CHECK } from './late-usage-exceptions.service';
export { DisputesService, DISPUTE_CHECK } from './disputes.service';
export type { DisputeInput } from './disputes.service';
export { ExceptionsJobs, escalationJobId } from './exceptions.jobs';
