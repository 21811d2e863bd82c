import { Command, CommandRunner } from 'nest-commander';
import { MikroORM } from '@mikro-orm/postgresql';
import { OrganizationsService } from '@closebook/platform';

/** The main job. It grows with each issue into a whole month-end; for now it sets up a tenant. */
@Command({ name: 'demo', description: 'Run the Closebook demo on its own database' })
export class DemoCommand extends CommandRunner {
  constructor(private readonly orgs: OrganizationsService, private readonly orm: MikroORM) {
    super();
  }

  async run(): Promise<void> {
    const started = Date.now();
    const { organization, adminKey } = await this.orgs.createWithAdminKey(this.orm.em.fork(), 'Demo SaaS Inc.');
    console.log(`Organization "${organization.name}" created (${organization.id}); admin key prefix ${adminKey.prefix}…`);
    console.log(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
