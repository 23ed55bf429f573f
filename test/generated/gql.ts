/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "mutation Register($login: String!, $password: String!, $email: String!) {\n  register(login: $login, password: $password, email: $email) {\n    confirmationToken\n    user {\n      id\n      login\n      email\n      confirmed\n      createdAt\n    }\n  }\n}\n\nmutation ConfirmAccount($login: String!, $token: String!) {\n  confirmAccount(login: $login, token: $token) {\n    id\n    login\n    confirmed\n  }\n}\n\nmutation Login($login: String!, $password: String!) {\n  login(login: $login, password: $password) {\n    expiresAt\n    user {\n      id\n      login\n    }\n  }\n}\n\nmutation Logout {\n  logout\n}\n\nquery Me {\n  me {\n    id\n    login\n    email\n    confirmed\n  }\n}": typeof types.RegisterDocument,
    "mutation CreateApiToken($name: String!, $expiresInDays: Int) {\n  createApiToken(name: $name, expiresInDays: $expiresInDays) {\n    token\n    apiToken {\n      id\n      name\n      createdAt\n      expiresAt\n      lastUsedAt\n      revokedAt\n    }\n  }\n}\n\nquery ApiTokens($includeRevoked: Boolean) {\n  apiTokens(includeRevoked: $includeRevoked) {\n    id\n    name\n    revokedAt\n    lastUsedAt\n  }\n}\n\nmutation RevokeApiToken($id: ID!) {\n  revokeApiToken(id: $id) {\n    id\n    revokedAt\n  }\n}\n\nsubscription AccountEvents {\n  accountEvents {\n    kind\n    subjectId\n    at\n  }\n}": typeof types.CreateApiTokenDocument,
};
const documents: Documents = {
    "mutation Register($login: String!, $password: String!, $email: String!) {\n  register(login: $login, password: $password, email: $email) {\n    confirmationToken\n    user {\n      id\n      login\n      email\n      confirmed\n      createdAt\n    }\n  }\n}\n\nmutation ConfirmAccount($login: String!, $token: String!) {\n  confirmAccount(login: $login, token: $token) {\n    id\n    login\n    confirmed\n  }\n}\n\nmutation Login($login: String!, $password: String!) {\n  login(login: $login, password: $password) {\n    expiresAt\n    user {\n      id\n      login\n    }\n  }\n}\n\nmutation Logout {\n  logout\n}\n\nquery Me {\n  me {\n    id\n    login\n    email\n    confirmed\n  }\n}": types.RegisterDocument,
    "mutation CreateApiToken($name: String!, $expiresInDays: Int) {\n  createApiToken(name: $name, expiresInDays: $expiresInDays) {\n    token\n    apiToken {\n      id\n      name\n      createdAt\n      expiresAt\n      lastUsedAt\n      revokedAt\n    }\n  }\n}\n\nquery ApiTokens($includeRevoked: Boolean) {\n  apiTokens(includeRevoked: $includeRevoked) {\n    id\n    name\n    revokedAt\n    lastUsedAt\n  }\n}\n\nmutation RevokeApiToken($id: ID!) {\n  revokeApiToken(id: $id) {\n    id\n    revokedAt\n  }\n}\n\nsubscription AccountEvents {\n  accountEvents {\n    kind\n    subjectId\n    at\n  }\n}": types.CreateApiTokenDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Register($login: String!, $password: String!, $email: String!) {\n  register(login: $login, password: $password, email: $email) {\n    confirmationToken\n    user {\n      id\n      login\n      email\n      confirmed\n      createdAt\n    }\n  }\n}\n\nmutation ConfirmAccount($login: String!, $token: String!) {\n  confirmAccount(login: $login, token: $token) {\n    id\n    login\n    confirmed\n  }\n}\n\nmutation Login($login: String!, $password: String!) {\n  login(login: $login, password: $password) {\n    expiresAt\n    user {\n      id\n      login\n    }\n  }\n}\n\nmutation Logout {\n  logout\n}\n\nquery Me {\n  me {\n    id\n    login\n    email\n    confirmed\n  }\n}"): (typeof documents)["mutation Register($login: String!, $password: String!, $email: String!) {\n  register(login: $login, password: $password, email: $email) {\n    confirmationToken\n    user {\n      id\n      login\n      email\n      confirmed\n      createdAt\n    }\n  }\n}\n\nmutation ConfirmAccount($login: String!, $token: String!) {\n  confirmAccount(login: $login, token: $token) {\n    id\n    login\n    confirmed\n  }\n}\n\nmutation Login($login: String!, $password: String!) {\n  login(login: $login, password: $password) {\n    expiresAt\n    user {\n      id\n      login\n    }\n  }\n}\n\nmutation Logout {\n  logout\n}\n\nquery Me {\n  me {\n    id\n    login\n    email\n    confirmed\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateApiToken($name: String!, $expiresInDays: Int) {\n  createApiToken(name: $name, expiresInDays: $expiresInDays) {\n    token\n    apiToken {\n      id\n      name\n      createdAt\n      expiresAt\n      lastUsedAt\n      revokedAt\n    }\n  }\n}\n\nquery ApiTokens($includeRevoked: Boolean) {\n  apiTokens(includeRevoked: $includeRevoked) {\n    id\n    name\n    revokedAt\n    lastUsedAt\n  }\n}\n\nmutation RevokeApiToken($id: ID!) {\n  revokeApiToken(id: $id) {\n    id\n    revokedAt\n  }\n}\n\nsubscription AccountEvents {\n  accountEvents {\n    kind\n    subjectId\n    at\n  }\n}"): (typeof documents)["mutation CreateApiToken($name: String!, $expiresInDays: Int) {\n  createApiToken(name: $name, expiresInDays: $expiresInDays) {\n    token\n    apiToken {\n      id\n      name\n      createdAt\n      expiresAt\n      lastUsedAt\n      revokedAt\n    }\n  }\n}\n\nquery ApiTokens($includeRevoked: Boolean) {\n  apiTokens(includeRevoked: $includeRevoked) {\n    id\n    name\n    revokedAt\n    lastUsedAt\n  }\n}\n\nmutation RevokeApiToken($id: ID!) {\n  revokeApiToken(id: $id) {\n    id\n    revokedAt\n  }\n}\n\nsubscription AccountEvents {\n  accountEvents {\n    kind\n    subjectId\n    at\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;