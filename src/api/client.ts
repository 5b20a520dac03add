// The CLI's side of the control API.
export class ApiError extends Error {
  override name = 'ApiError'
  constructor (message: string, readonly status?: number) { super(message) }
}

export interface ApiClient {
  get: <T>(path: string, signal?: AbortSignal) => Promise<T>
  post: <T>(path: string, body: unknown, signal?: AbortSignal) => Promise<T>
}

export function createApiClient (url: string, token: string): ApiClient {
  const base = url.replace(/\/+$/, '')
  const request = async <T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> => {
    let response: Response
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: signal ?? AbortSignal.timeout(30_000)
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code
      throw new ApiError(`cannot reach the node's control API at ${base}${cause != null ? ` (${cause})` : ''}: is \`stem start\` running?`)
    }
    const text = await response.text()
    let json: unknown
    try { json = text === '' ? undefined : JSON.parse(text) } catch { json = undefined }
    if (!response.ok) {
      const message = (json as { error?: string } | undefined)?.error ?? (text.split('\n')[0] || response.statusText)
      throw new ApiError(message, response.status)
    }
    return json as T
  }
  return {
    get: async (path, signal) => request('GET', path, undefined, signal),
    post: async (path, body, signal) => request('POST', path, body, signal)
  }
}
