// Error codes and validation details become sentences in the user's language.
import { afterEach, describe, expect, it } from 'vitest'
import { ApiError, toApiError } from '@/api/errors'
import { describeCode, describeError, fieldErrors, fieldName, type Translator } from '@/i18n/errors'
import { i18n } from '@/i18n'
import serverCodes from './error-codes.json'

const tr: Translator = {
  t: (key, named) => (named ? i18n.global.t(key, named) : i18n.global.t(key)),
  te: (key) => i18n.global.te(key),
}

afterEach(() => {
  i18n.global.locale.value = 'zh-CN'
})

describe('describeCode (a failed job keeps only its code and details)', () => {
  it('words an unexpected failure in the reader\'s language', () => {
    expect(describeCode(tr, 'internal_error')).toBe('服务器出错了，请稍后重试')
    i18n.global.locale.value = 'en'
    expect(describeCode(tr, 'internal_error')).toBe('Server error; please try again later')
  })

  it('words a refused import file from its code and details, never the server message', () => {
    const details = [{ field: 'file', reason: 'not_a_spreadsheet', message: 'The file is a zip archive' }]
    const zh = describeCode(tr, 'validation_error', details)
    expect(zh).toContain(tr.t('fields.file'))
    expect(zh).not.toContain('zip archive')
    i18n.global.locale.value = 'en'
    expect(describeCode(tr, 'validation_error', details)).not.toBe(zh)
  })
})

describe('describeError', () => {
  it('translates a known code in both languages', () => {
    const err = new ApiError(401, 'invalid_credentials', 'Invalid username or password')
    expect(describeError(tr, err)).toBe('用户名或密码错误')
    i18n.global.locale.value = 'en'
    expect(describeError(tr, err)).toBe('Wrong username or password')
  })

  it('translates the lockout', () => {
    expect(describeError(tr, new ApiError(423, 'account_locked', 'locked'))).toContain('锁定')
  })

  it('falls back to the HTTP status for an unknown code, never to the English server message', () => {
    const err = new ApiError(409, 'some_future_code', 'An English sentence from the server')
    expect(describeError(tr, err)).toBe('与当前数据冲突')
  })

  it('names the code when neither code nor status is known', () => {
    expect(describeError(tr, new ApiError(418, 'teapot', 'x'))).toBe('操作失败（teapot）')
  })

  it('lists each field with its translated reason', () => {
    const err = new ApiError(422, 'validation_error', 'invalid', [
      { field: 'body.username', reason: 'already_exists', message: 'taken' },
      { field: 'body.role_ids.0', reason: 'int_parsing', message: 'bad' },
      { field: 'body.mystery', reason: 'unheard_of', message: 'bad' },
    ])
    expect(describeError(tr, err)).toBe('填写的内容有误：用户名已被使用；角色应为整数；mystery不合法')
    i18n.global.locale.value = 'en'
    expect(describeError(tr, err)).toBe(
      'Some fields are not valid: Username is already taken; Roles must be a whole number; mystery is not valid',
    )
  })

  it('explains a refused password change field by field', () => {
    const err = new ApiError(422, 'validation_error', 'The password was not changed', [
      { field: 'current_password', reason: 'password_incorrect', message: 'wrong' },
      { field: 'new_password', reason: 'password_too_simple', message: 'simple' },
    ])
    expect(fieldErrors(tr, err)).toEqual({
      current_password: '不正确',
      new_password: '太简单：需包含大写字母、小写字母、数字、符号中的至少三类',
    })
    expect(describeError(tr, err)).toContain('当前密码不正确')
  })

  it('maps field problems to form items', () => {
    const err = new ApiError(409, 'already_exists', 'dup', [{ field: 'code', reason: 'already_exists' }])
    expect(fieldErrors(tr, err)).toEqual({ code: '已被使用' })
  })

  it('strips the location and list indices from a field path', () => {
    expect(fieldName('body.store_ids.3')).toBe('store_ids')
    expect(fieldName('query.page')).toBe('page')
    expect(fieldName('body')).toBeNull()
    expect(fieldName(null)).toBeNull()
  })
})

describe('toApiError', () => {
  it('reads the error body', () => {
    const res = new Response(null, { status: 409 })
    const err = toApiError({ error: 'already_exists', message: 'dup', details: [], request_id: 'r1' }, res)
    expect(err).toMatchObject({ status: 409, code: 'already_exists', requestId: 'r1' })
  })

  it('turns a failed fetch into network_error', () => {
    expect(toApiError(new TypeError('Failed to fetch'), undefined).code).toBe('network_error')
    expect(describeError(tr, toApiError(new TypeError('x'), undefined))).toBe('无法连接服务器，请检查网络')
  })

  it('keeps a non-JSON body as an http_<status> code', () => {
    const err = toApiError('<html>bad gateway</html>', new Response(null, { status: 502 }))
    expect(err.code).toBe('http_502')
    expect(describeError(tr, err)).toBe('服务器暂时不可用')
  })
})

describe('every error code the server declares', () => {
  // listed by tests/test_error_codes.py, which fails when the server declares one not listed
  it.each(['zh-CN', 'en'] as const)('has its own sentence (%s)', (locale) => {
    const missing = (serverCodes as string[]).filter((code) => !i18n.global.te(`errors.${code}`, locale))
    expect(missing).toEqual([])
  })
})

describe('every reason a product import reports for a row', () => {
  // the reasons src/selfmart/catalog/importer.py gives (ValueError(reason, ...), errors.add, invalid)
  const IMPORT_REASONS = [
    'bad_status', 'barcodes_of_different_products', 'category_not_found', 'control_character',
    'duplicate_column', 'duplicate_in_file', 'missing_column', 'negative', 'not_a_number',
    'not_an_integer', 'not_whole_fen', 'not_yes_no', 'out_of_range', 'required', 'tag_not_found',
    'too_deep', 'too_large', 'too_long', 'unknown_columns',
  ]
  it.each(['zh-CN', 'en'] as const)('reads in words (%s)', (locale) => {
    expect(IMPORT_REASONS.filter((r) => !i18n.global.te(`validation.${r}`, locale))).toEqual([])
  })
})
