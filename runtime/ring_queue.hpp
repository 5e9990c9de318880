#pragma once

// A FIFO on one growable circular buffer: push at the back, pop at the front,
// iterate oldest to newest (or back). Unlike std::deque, which in libstdc++
// allocates about 600 bytes the moment it is constructed, an empty
// ring_queue allocates nothing: an entity with five of them idle costs five
// empty vectors, which matters at a hundred thousand resident wallets.

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace wager {

template <class T>
class ring_queue {
public:
  template <bool Const>
  class basic_iterator {
  public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using owner = std::conditional_t<Const, const ring_queue, ring_queue>;
    using reference = std::conditional_t<Const, const T&, T&>;
    using pointer = std::conditional_t<Const, const T*, T*>;

    basic_iterator() = default;
    basic_iterator(owner* q, size_t i) : q_(q), i_(i) {}
    operator basic_iterator<true>() const { return {q_, i_}; }

    reference operator*() const { return (*q_)[i_]; }
    pointer operator->() const { return &(*q_)[i_]; }
    basic_iterator& operator++() {
      ++i_;
      return *this;
    }
    basic_iterator operator++(int) {
      auto old = *this;
      ++i_;
      return old;
    }
    basic_iterator& operator--() {
      --i_;
      return *this;
    }
    basic_iterator operator--(int) {
      auto old = *this;
      --i_;
      return old;
    }
    friend bool operator==(const basic_iterator& a, const basic_iterator& b) {
      return a.i_ == b.i_;
    }

  private:
    owner* q_ = nullptr;
    size_t i_ = 0; // position from the front
  };

  using value_type = T;
  using iterator = basic_iterator<false>;
  using const_iterator = basic_iterator<true>;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Position i from the front (0: the oldest).
  T& operator[](size_t i) { return buf_[(head_ + i) % buf_.size()]; }
  const T& operator[](size_t i) const { return buf_[(head_ + i) % buf_.size()]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  void push_back(T x) {
    if (size_ == buf_.size())
      grow();
    buf_[(head_ + size_) % buf_.size()] = std::move(x);
    ++size_;
  }

  void pop_front() {
    buf_[head_] = T{}; // lets go of what the element owned now
    head_ = (head_ + 1) % buf_.size();
    if (--size_ == 0)
      head_ = 0;
  }

  // Removes position i, keeping the order of the others: those after it
  // move one place forward.
  void erase(size_t i) {
    for (; i + 1 < size_; ++i)
      (*this)[i] = std::move((*this)[i + 1]);
    (*this)[size_ - 1] = T{};
    if (--size_ == 0)
      head_ = 0;
  }

  // Empties and gives the memory back.
  void clear() {
    std::vector<T>{}.swap(buf_);
    head_ = size_ = 0;
  }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }
  reverse_iterator rbegin() { return reverse_iterator{end()}; }
  reverse_iterator rend() { return reverse_iterator{begin()}; }
  const_reverse_iterator rbegin() const { return const_reverse_iterator{end()}; }
  const_reverse_iterator rend() const { return const_reverse_iterator{begin()}; }

  friend bool operator==(const ring_queue& a, const ring_queue& b) {
    if (a.size_ != b.size_)
      return false;
    for (size_t i = 0; i < a.size_; ++i)
      if (!(a[i] == b[i]))
        return false;
    return true;
  }

private:
  void grow() {
    std::vector<T> bigger;
    bigger.resize(buf_.empty() ? 4 : buf_.size() * 2);
    for (size_t i = 0; i < size_; ++i)
      bigger[i] = std::move((*this)[i]);
    buf_.swap(bigger);
    head_ = 0;
  }

  std::vector<T> buf_; // capacity == size(): every slot is in the ring
  size_t head_ = 0;
  size_t size_ = 0;
};

} // namespace wager
