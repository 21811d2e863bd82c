import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, READ_ROLES, Roles, ValidationError, ZBody, type Principal } from '@closebook/platform';
import { CloseService } from '@closebook/reconciliation';
import {
  closeBody,
  closeResultView,
  closeStatusView,
  monthEndView,
  presentMonthEnd,
  presentSettings,
  presentSignOff,
  presentSignOffState,
  presentStatus,
  settingsBody,
  settingsView,
  signOffBody,
  signOffStateView,
  signOffView,
} from './close.views';

const TAGS = ['close'];
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;
function period(v: string): string {
  if (!PERIOD.test(v)) throw new ValidationError('invalid_value', 'period must be a month as YYYY-MM', 'period');
  return v;
}

/** The close of a month (SPEC §6): what blocks it, the month-end work, sign-offs, the close. docs/close.md. */
@Controller('periods/:period')
export class CloseController {
  constructor(private readonly close: CloseService, private readonly em: EntityManager) {}

  @Get('close')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Close status: exactly what blocks the close of the month (stale or missing checks, open exceptions, drafts, unposted invoices, missing or stale sign-offs), each check with its population; a read that changes nothing. A closed month answers what its close recorded', tags: TAGS, response: closeStatusView })
  async status(@Caller() caller: Principal, @Param('period') p: string) {
    return presentStatus(await this.close.status(this.em, caller.organizationId, period(p)));
  }

  @Post('close')
  @HttpCode(200)
  @Roles('finance')
  @ApiRoute({ summary: 'Close and lock the month; 422 close_blocked with the blockers when it cannot. Closing a closed month is one transition', tags: TAGS, response: closeResultView })
  async closeMonth(@Caller() caller: Principal, @Param('period') p: string, @ZBody(closeBody) _body: z.infer<typeof closeBody>) {
    const res = await this.close.close(this.em, caller.organizationId, period(p), caller);
    return { ...presentStatus(res.status), transitioned: res.transitioned, closed_at: res.ledger.closedAt ? res.ledger.closedAt.toISOString() : null };
  }

  @Post('month-end')
  @HttpCode(200)
  @Roles('finance')
  @ApiRoute({ summary: 'Run the month-end work before reconciling: pending rollups, revenue recognition, usage accruals, late usage → exceptions (idempotent)', tags: TAGS, response: monthEndView })
  async monthEnd(@Caller() caller: Principal, @Param('period') p: string, @ZBody(closeBody) _body: z.infer<typeof closeBody>) {
    return presentMonthEnd(await this.close.monthEnd(this.em, caller.organizationId, period(p)));
  }

  @Get('sign-offs')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Sign-offs of the month, withdrawn ones included', tags: TAGS, response: z.object({ data: z.array(signOffView) }) })
  async signOffs(@Caller() caller: Principal, @Param('period') p: string) {
    return { data: (await this.close.signOffs(this.em, caller.organizationId, period(p))).map(presentSignOff) };
  }

  @Post('sign-offs')
  @Roles('finance')
  @ApiRoute({ summary: 'Sign a step of the close over the current check results (refused when a check is missing or stale; two steps need two signers; a stale sign-off of the step is superseded)', tags: TAGS, response: signOffStateView })
  async signOff(@Caller() caller: Principal, @Param('period') p: string, @ZBody(signOffBody) body: z.infer<typeof signOffBody>) {
    return presentSignOffState(await this.close.signOff(this.em, caller.organizationId, period(p), { step: body.step, note: body.note, signer: caller }));
  }
}

/** The organization's required sign-offs. */
@Controller('close-settings')
export class CloseSettingsController {
  constructor(private readonly close: CloseService, private readonly em: EntityManager) {}

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'The sign-offs a month needs before it can close', tags: TAGS, response: settingsView })
  async get(@Caller() caller: Principal) {
    return presentSettings(await this.close.requiredSignOffs(this.em, caller.organizationId));
  }

  @Post()
  @HttpCode(200)
  @Roles('admin')
  @ApiRoute({ summary: 'Set the sign-offs a month needs (steps and the key roles that may give each; admin always may)', tags: TAGS, response: settingsView })
  async set(@Caller() caller: Principal, @ZBody(settingsBody) body: z.infer<typeof settingsBody>) {
    return presentSettings(await this.close.setRequiredSignOffs(this.em, caller.organizationId, body.required_sign_offs));
  }
}
