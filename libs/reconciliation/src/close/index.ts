export { CloseModule, CLOSE_ENTITIES } from './close.module';
export { CloseService, DEFAULT_SIGN_OFFS } from './close.service';
export type { Blocker, BlockerCode, CheckState, CloseStatus, MonthEndResult, SignOffView } from './close.service';
export { PeriodClose } from './entities/period-close.entity';
export type { ClosedCheck, ClosedSignOff } from './entities/period-close.entity';
export { CloseSignOff } from './entities/close-sign-off.entity';
export { CloseSettings } from './entities/close-settings.entity';
export type { RequiredSignOff } from './entities/close-settings.entity';
