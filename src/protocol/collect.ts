/** A whole frame stream read into the non-stream OpenAI answer (or the error it carried). */
import { readFrames } from "./codec.js";
import { FramesToOpenAI, type OpenAIView } from "./openai.js";

export async function collectFrames(
  body: ReadableStream<Uint8Array>,
  view: OpenAIView,
  /** Pass one in to read what arrived even if the stream fails (collectFrames then throws). */
  state: FramesToOpenAI = new FramesToOpenAI(view),
): Promise<FramesToOpenAI> {
  for await (const frame of readFrames(body)) {
    state.chunks(frame);
    if (state.done) break;
  }
  return state;
}
