// The shape every locale must have: zh-CN's keys with string values.
import type zhCN from './locales/zh-CN'

type Widen<T> = T extends string ? string : { -readonly [K in keyof T]: Widen<T[K]> }

export type LocaleMessages = Widen<typeof zhCN>
export const LOCALES = ['zh-CN', 'en'] as const
export type Locale = (typeof LOCALES)[number]
