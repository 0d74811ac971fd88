use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

enum Control<T> {
    Elem(T),
    Unblock,
}

pub struct MessagesQueue<T>
where
    T: Send,
{
    queue: Mutex<State<T>>,
    condvar: Condvar,
}

// PATCHED: the number of threads waiting in `pop`/`pop_timeout` is kept with the queue,
// and `push`/`unblock` notify outside the lock and only when someone waits. Notifying
// under the lock woke a worker straight into a contended mutex (two extra futex calls
// per request), and a notification nobody waits for is still a futex syscall.
struct State<T> {
    queue: VecDeque<Control<T>>,
    waiting: usize,
}

impl<T> MessagesQueue<T>
where
    T: Send,
{
    pub fn with_capacity(capacity: usize) -> Arc<MessagesQueue<T>> {
        Arc::new(MessagesQueue {
            queue: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity),
                waiting: 0,
            }),
            condvar: Condvar::new(),
        })
    }

    /// Pushes an element to the queue.
    pub fn push(&self, value: T) {
        self.push_control(Control::Elem(value));
    }

    /// Unblock one thread stuck in pop loop.
    pub fn unblock(&self) {
        self.push_control(Control::Unblock);
    }

    fn push_control(&self, control: Control<T>) {
        let mut state = self.queue.lock().unwrap();
        state.queue.push_back(control);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.condvar.notify_one();
        }
    }

    /// Pops an element. Blocks until one is available.
    /// Returns None in case unblock() was issued.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.queue.lock().unwrap();

        loop {
            match state.queue.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }

            state.waiting += 1;
            state = self.condvar.wait(state).unwrap();
            state.waiting -= 1;
        }
    }

    /// Tries to pop an element without blocking.
    pub fn try_pop(&self) -> Option<T> {
        let mut state = self.queue.lock().unwrap();
        match state.queue.pop_front() {
            Some(Control::Elem(value)) => Some(value),
            Some(Control::Unblock) | None => None,
        }
    }

    /// Tries to pop an element without blocking
    /// more than the specified timeout duration
    /// or unblock() was issued
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let mut state = self.queue.lock().unwrap();
        let mut duration = timeout;
        loop {
            match state.queue.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }
            let now = Instant::now();
            state.waiting += 1;
            // PATCHED: wait what is left of the timeout (upstream waited the whole
            // `timeout` on every spurious wake-up).
            let (_state, result) = self.condvar.wait_timeout(state, duration).unwrap();
            state = _state;
            state.waiting -= 1;
            let sleep_time = now.elapsed();
            duration = if duration > sleep_time {
                duration - sleep_time
            } else {
                Duration::from_millis(0)
            };
            if result.timed_out()
                || (duration.as_secs() == 0 && duration.subsec_nanos() < 1_000_000)
            {
                // PATCHED: an element pushed while the timeout ran out is still taken.
                return match state.queue.pop_front() {
                    Some(Control::Elem(value)) => Some(value),
                    Some(Control::Unblock) | None => None,
                };
            }
        }
    }
}
