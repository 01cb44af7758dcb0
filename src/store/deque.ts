/**
 * A double-ended queue on a ring buffer (the list of store.memory): push and pop at both ends
 * in O(1) amortized, element `i` in O(1). The buffer doubles when full and halves when a quarter
 * full, so a list that shrank does not keep its peak's memory.
 */
const MIN_CAPACITY = 8;

export class Deque<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(MIN_CAPACITY);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Element `i` (0 <= i < length). */
  at(i: number): T {
    return this.#items[(this.#head + i) & (this.#items.length - 1)]!;
  }

  pushBack(value: T): void {
    if (this.#length === this.#items.length) this.#resize(this.#items.length * 2);
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = value;
    this.#length++;
  }

  pushFront(value: T): void {
    if (this.#length === this.#items.length) this.#resize(this.#items.length * 2);
    this.#head = (this.#head - 1) & (this.#items.length - 1);
    this.#items[this.#head] = value;
    this.#length++;
  }

  /** Removes and returns the first element (length > 0). */
  popFront(): T {
    const value = this.#items[this.#head]!;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    this.#shrink();
    return value;
  }

  /** Removes and returns the last element (length > 0). */
  popBack(): T {
    const i = (this.#head + this.#length - 1) & (this.#items.length - 1);
    const value = this.#items[i]!;
    this.#items[i] = undefined;
    this.#length--;
    this.#shrink();
    return value;
  }

  #shrink(): void {
    if (this.#items.length > MIN_CAPACITY && this.#length <= this.#items.length / 4) this.#resize(this.#items.length / 2);
  }

  #resize(capacity: number): void {
    const items = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.#length; i++) items[i] = this.at(i);
    this.#items = items;
    this.#head = 0;
  }
}
