import { Global, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { AppConfig } from '../config/app-config';
import { buildOrmConfig } from './orm-config';

@Global()
@Module({
  imports: [
    MikroOrmModule.forRootAsync({
      driver: PostgreSqlDriver,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        ...buildOrmConfig({ databaseUrl: config.databaseUrl, poolMax: config.dbPoolMax }),
        autoLoadEntities: true,
      }),
    }),
  ],
})
export class DatabaseModule {}
