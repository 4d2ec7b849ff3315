// Friendly names for the generated types, taken from operations so they follow the real spec.
import type * as G from './generated/types.gen'

type Item<P> = P extends { items: Array<infer I> } ? I : never

export type TokenPair = G.LoginResponse
export type Me = G.GetMeResponse
export type PermissionInfo = G.ListPermissionsResponse[number]
export type UserRead = Item<G.ListUsersResponse>
export type UserQuery = NonNullable<G.ListUsersData['query']>
export type UserCreate = G.CreateUserData['body']
export type UserUpdate = G.UpdateUserData['body']
export type RoleRead = Item<G.ListRolesResponse>
export type RoleCreate = G.CreateRoleData['body']
export type RoleUpdate = G.UpdateRoleData['body']
export type LoginLogRead = Item<G.ListLoginLogsResponse>
export type LoginLogQuery = NonNullable<G.ListLoginLogsData['query']>
export type StoreRead = Item<G.ListStoresResponse>
export type StoreStatus = NonNullable<G.CreateStoreData['body']['status']>
export type StoreQuery = NonNullable<G.ListStoresData['query']>
export type StoreCreate = G.CreateStoreData['body']
export type StoreUpdate = G.UpdateStoreData['body']
export type TerminalRead = Item<G.ListTerminalsResponse>
export type TerminalStatus = NonNullable<TerminalQuery['status']>
export type TerminalQuery = NonNullable<G.ListTerminalsData['query']>
export type TerminalCreate = G.CreateTerminalData['body']
export type TerminalUpdate = G.UpdateTerminalData['body']
export type ActivationCode = G.IssueActivationCodeResponse
export type KeyRotation = G.RotateTerminalKeyResponse
export type FleetSummary = G.TerminalFleetSummaryResponse
export type AuditLogRead = Item<G.ListAuditLogsResponse>
export type BehaviourEventRead = Item<G.ListBusinessLogsResponse>
export type AuditLogQuery = NonNullable<G.ListAuditLogsData['query']>
export type MessageRead = Item<G.ListMessagesResponse>
