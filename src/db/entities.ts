// Every entity the ORM knows, in one list.
import { User } from '../domain/users/user.entity.ts';
import { Session } from '../auth/session.entity.ts';
import { ApiToken } from '../auth/api-token.entity.ts';

export const entities = [User, Session, ApiToken];
