export { CloseModule, CLOSE_ENTITIES } from './close.module';
export { CloseService, DEFAULT_SIGN_OFFS } from './close.service';
export type { Blocker, BlockerCode, CloseStatus, MonthEndResult } from './close.service';
export { CloseSignOff } from './entities/close-sign-off.entity';
export { CloseSettings } from './entities/close-settings.entity';
export type { RequiredSignOff } from './entities/close-settings.entity';
