import { NestFactory } from '@nestjs/core';
import { WorkerModule } from '../../../apps/worker/src/worker.module';
it('boots', async () => {
  const w = await NestFactory.createApplicationContext(WorkerModule, { abortOnError: false });
  await w.init();
  await w.close();
});
