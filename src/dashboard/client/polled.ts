// A JSON endpoint of the dashboard read again every 2 s while a panel shows it (a cell's
// log, an app's streams): its latest answer, or the error it answered with.
import { useEffect, useState } from 'preact/hooks'

const REFRESH_MS = 2000

export function usePolledJson<T> (url: string): { value: T | undefined, error: string } {
  const [value, setValue] = useState<T | undefined>(undefined)
  const [error, setError] = useState('')
  useEffect(() => {
    let stopped = false
    setValue(undefined)
    const load = async (): Promise<void> => {
      try {
        const response = await fetch(url)
        const body = await response.json() as T | { error: string }
        if (stopped) return
        if (response.ok) { setValue(body as T); setError('') } else setError((body as { error: string }).error)
      } catch (err) {
        if (!stopped) setError((err as Error).message)
      }
    }
    void load()
    const timer = setInterval(() => { void load() }, REFRESH_MS)
    return () => { stopped = true; clearInterval(timer) }
  }, [url])
  return { value, error }
}
