import type { Page, PageParams } from "./types.js";

/**
 * A list across all its pages, fetched as they are reached: `for await (const item of list)` reads
 * every item, `pages()` every page, `firstPage()` just the first. Nothing is requested before one of
 * them is used, and each use starts again from the beginning.
 */
export class PagedList<T, P extends PageParams = PageParams> implements AsyncIterable<T> {
  constructor(
    private readonly fetchPage: (params: P) => Promise<Page<T>>,
    private readonly params: P,
  ) {}

  firstPage(): Promise<Page<T>> {
    return this.fetchPage(this.params);
  }

  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let page = await this.firstPage();
    yield page;
    while (page.has_more && page.next_cursor !== null) {
      // The cursor continues after the last item, with the same filters; `starting_after` only placed the first page.
      page = await this.fetchPage({ ...this.params, starting_after: undefined, cursor: page.next_cursor });
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.data;
  }
}
