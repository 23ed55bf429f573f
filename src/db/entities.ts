// Every entity the ORM knows, in one list.
import { User } from '../domain/users/user.entity.ts';
import { Session } from '../auth/session.entity.ts';
import { ApiToken } from '../auth/api-token.entity.ts';
import { LogLine } from '../domain/logs/log-line.entity.ts';
import { Image } from '../domain/images/image.entity.ts';
import { RegistryCredential } from '../domain/images/registry-credential.entity.ts';
import { Build } from '../domain/builds/build.entity.ts';
import { Pipeline } from '../domain/pipelines/pipeline.entity.ts';
import { Job } from '../domain/jobs/job.entity.ts';

export const entities = [User, Session, ApiToken, LogLine, Image, RegistryCredential, Build, Pipeline, Job];
