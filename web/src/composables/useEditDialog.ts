// A create/edit dialog over a list: which item is being edited (null: a new one), the dialog's
// open and saving flags, and the save and delete steps every such panel repeats (success message,
// close, reload the list; errors shown, nothing closed).
import { ref, type Ref } from 'vue'
import { confirm, showError, showSuccess } from '@/utils/feedback'

export function useEditDialog<T>(reload: () => Promise<void>) {
  const open = ref(false)
  const editing = ref(null) as Ref<T | null>
  const saving = ref(false)

  /** Open the dialog for `item` (null: a new one); fill the form before calling this. */
  function start(item: T | null): void {
    editing.value = item
    open.value = true
  }

  /** Run `write` (given the item being edited, null when creating), then close and reload. */
  async function submit(write: (item: T | null) => Promise<unknown>): Promise<void> {
    saving.value = true
    try {
      await write(editing.value)
      showSuccess()
      open.value = false
      await reload()
    } catch (err) {
      showError(err)
    } finally {
      saving.value = false
    }
  }

  /** Ask `question` as a dangerous confirmation, then run `remove` and reload. */
  async function removeAfter(question: string, remove: () => Promise<unknown>): Promise<void> {
    if (!(await confirm(question, { danger: true }))) return
    try {
      await remove()
      showSuccess()
      await reload()
    } catch (err) {
      showError(err)
    }
  }

  return { open, editing, saving, start, submit, removeAfter }
}
