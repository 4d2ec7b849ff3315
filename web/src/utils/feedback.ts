// Toasts and confirmations in the user's language; every destructive action goes through confirm().
import { ElMessage, ElMessageBox } from 'element-plus'
import { i18n } from '@/i18n'
import { describeError, type Translator } from '@/i18n/errors'

export function translator(): Translator {
  const g = i18n.global
  return {
    t: (key, named) => (named ? g.t(key, named) : g.t(key)),
    te: (key) => g.te(key),
  }
}

export function showError(err: unknown): void {
  ElMessage({ type: 'error', message: describeError(translator(), err), grouping: true, duration: 5000 })
}

export function showSuccess(key = 'common.done', named?: Record<string, unknown>): void {
  ElMessage({ type: 'success', message: named ? i18n.global.t(key, named) : i18n.global.t(key), grouping: true })
}

/** Asks before doing something that cannot be undone; resolves true when the user agrees. */
export async function confirm(message: string, opts: { danger?: boolean; confirmKey?: string } = {}): Promise<boolean> {
  const t = i18n.global.t
  try {
    await ElMessageBox.confirm(message, t(opts.danger ? 'common.dangerTitle' : 'common.confirmTitle'), {
      type: opts.danger ? 'warning' : 'info',
      confirmButtonText: t(opts.confirmKey ?? 'common.confirm'),
      cancelButtonText: t('common.cancel'),
      confirmButtonClass: opts.danger ? 'el-button--danger' : undefined,
      autofocus: false,
    })
    return true
  } catch {
    return false
  }
}

/** Runs an API call, shows its error if it fails; returns undefined on failure. */
export async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn()
  } catch (err) {
    showError(err)
    return undefined
  }
}

export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text)
    showSuccess('common.copied')
  } catch {
    ElMessage({ type: 'warning', message: i18n.global.t('common.copyFailed') })
  }
}
